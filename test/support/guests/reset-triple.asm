; Reset by triple fault: an empty interrupt table, then an exception (INT3 cannot be delivered).
%include "firmware.inc"

main:
    lidt [cs:empty_idt]
    int3
    jmp idle
empty_idt:
    dw 0
    dd 0
    jmp idle

%include "reset-vector.inc"
