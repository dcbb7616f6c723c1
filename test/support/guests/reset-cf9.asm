; Reset through the PIIX3 reset control register: 0x06 (hard reset, reset CPU) into port 0xCF9.
%include "firmware.inc"

main:
    mov dx, 0xCF9
    mov al, 0x06
    out dx, al
    jmp idle

%include "reset-vector.inc"
