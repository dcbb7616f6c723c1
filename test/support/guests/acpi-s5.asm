; ACPI power-off: SLP_TYP=0 (S5) with SLP_EN into PM1a_CNT.
%include "firmware.inc"

main:
    mov ax, 0x2000
    call acpi_sleep
    jmp idle

%include "reset-vector.inc"
