; pvpanic: 'guest shut down' (bit 2, value 4) into the ISA pvpanic port 0x505 (-device pvpanic;
; QEMU 9.1+ acts on it with GUEST_PVSHUTDOWN and a guest-shutdown request, qemu-behaviour §4.3).
%include "firmware.inc"

main:
    mov dx, 0x505
    mov al, 4
    out dx, al
    jmp idle

%include "reset-vector.inc"
