; Balloon driver: does what the host asks, as a guest driver would (without giving the memory
; back for real): polls `num_pages` and reports the same number in `actual`, so that `balloon`
; ends in BALLOON_CHANGE with the target.
%include "firmware.inc"
%include "pci.inc"
%include "virtio-balloon.inc"

main:
    call balloon_enable
    xor ebp, ebp                ; the size last reported
.poll:
    mov dx, BALLOON_NUM_PAGES
    in eax, dx
    cmp eax, ebp
    je .wait
    mov ebp, eax
    call balloon_set_actual
.wait:
    mov cx, 4000
    call spin
    jmp .poll

%include "reset-vector.inc"
