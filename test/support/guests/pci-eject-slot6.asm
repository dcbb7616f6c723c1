; PCI eject without a request: writes slot 6's bit to the PIIX4 ACPI PCI hotplug eject register
; (0xae08) once, as a guest OS may do on its own (hw/acpi/pcihp.c ejects whatever hot-pluggable
; device is in the slot, requested or not).
%include "firmware.inc"

main:
    mov dx, 0xae08
    mov eax, 1 << 6
    out dx, eax
    jmp idle

%include "reset-vector.inc"
