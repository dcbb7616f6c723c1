; ACPI hibernate: SLP_TYP=2 (S4) with SLP_EN into PM1a_CNT.
%include "firmware.inc"

main:
    mov ax, 0x2800
    call acpi_sleep
    jmp idle

%include "reset-vector.inc"
