; PCI hot-unplug acknowledgement, the part of an OS's ACPI _EJ0 that QEMU sees: polls the PIIX4
; ACPI PCI hotplug "down" register (pending removals of the selected bus, 0xae04) and writes the
; slots it finds to the eject register (0xae08); QEMU then unplugs the device (hw/acpi/pcihp.c).
; The bus selector (0xae10) stays 0, the root bus.
%include "firmware.inc"

main:
.poll:
    mov dx, 0xae04
    in eax, dx
    test eax, eax
    jz .wait
    mov dx, 0xae08
    out dx, eax
.wait:
    mov cx, 4000
.spin:
    pause
    loop .spin
    jmp .poll

%include "reset-vector.inc"
