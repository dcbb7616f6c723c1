; Reset through the keyboard controller: command 0xFE (pulse the reset line) into port 0x64.
%include "firmware.inc"

main:
    mov al, 0xFE
    out 0x64, al
    jmp idle

%include "reset-vector.inc"
