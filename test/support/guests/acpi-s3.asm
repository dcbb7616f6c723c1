; ACPI suspend to RAM: SLP_TYP=1 (S3) with SLP_EN into PM1a_CNT. After a wake-up the guest restarts at the reset vector and idles.
%include "firmware.inc"

main:
    mov ax, 0x2400
    call acpi_sleep
    jmp idle

%include "reset-vector.inc"
