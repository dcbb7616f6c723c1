; pvpanic: 'crash kernel loaded' (bit 1, value 2) into port 0x505.
%include "firmware.inc"

main:
    mov dx, 0x505
    mov al, 2
    out dx, al
    jmp idle

%include "reset-vector.inc"
