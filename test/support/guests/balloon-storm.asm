; Balloon storm: reports three balloon sizes in quick succession (256, 512 then 768 pages taken
; from the guest); QEMU emits BALLOON_CHANGE for each change of `actual`, throttled (§2): the
; first goes out at once, the last is held for a second.
%include "firmware.inc"
%include "pci.inc"
%include "virtio-balloon.inc"

main:
    call balloon_enable
    mov eax, 256
    call balloon_set_actual
    mov cx, 2000
    call spin
    mov eax, 512
    call balloon_set_actual
    mov cx, 2000
    call spin
    mov eax, 768
    call balloon_set_actual
    jmp idle

%include "reset-vector.inc"
