; pvpanic: 'guest panicked' (bit 0, value 1) into the ISA pvpanic port 0x505 (-device pvpanic).
%include "firmware.inc"

main:
    mov dx, 0x505
    mov al, 1
    out dx, al
    jmp idle

%include "reset-vector.inc"
