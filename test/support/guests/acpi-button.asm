; Honours the ACPI power button, as an OS does, on every boot (not once per process like the
; other guests): it maps the PIIX4 PM block, sets PWRBTN_EN (bit 8 of PM1_EN, 0x602) and, each
; time the timer wakes it, looks at PWRBTN_STS (bit 8 of PM1_STS, 0x600); once `system_powerdown`
; has pressed the button it powers off (S5). QEMU latches a press only while PWRBTN_EN is set
; (hw/acpi/core.c acpi_pm1_evt_power_down), and a system reset clears it with the PMBA mapping
; (hw/acpi/piix4.c piix4_pm_reset), so the guest arms it first thing after every reset.
; Between looks it halts (the PIT's IRQ 0 at 100 Hz wakes it): an idle guest, not a busy one.
%include "firmware.inc"

main:
    ; Never reached: this guest has its own entry (below), without the once-per-process flag.
    jmp idle

PIT_DIVISOR equ 11932           ; 1.193182 MHz / 11932 = 100 Hz

button_entry:
    cli
    cld
    xor ax, ax
    mov ss, ax
    mov sp, 0x7C00
    mov ds, ax
    call acpi_enable
    mov dx, 0x602
    mov ax, 0x0100
    out dx, ax
    ; The local APIC comes out of reset with LINT0 masked, which keeps the 8259's interrupts from
    ; the CPU (hw/intc/apic.c apic_deliver_pic_intr); SeaBIOS sets LINT0 to ExtINT, and so do we:
    ; SPIV := 0x1FF (APIC on), LVT LINT0 := 0x700 (ExtINT), through FS with a 4 GiB limit
    ; ("unreal" mode: loaded in protected mode, kept back in real mode).
    lgdt [cs:gdt_pointer]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    mov bx, 0x08
    mov fs, bx
    and al, 0xFE
    mov cr0, eax
    xor bx, bx
    mov fs, bx
    mov dword [fs:dword 0xFEE000F0], 0x1FF
    mov dword [fs:dword 0xFEE00350], 0x700
    ; IRQ 0 -> vector 8 (an EOI and IRET), every other IRQ masked.
    mov word [8 * 4], tick
    mov word [8 * 4 + 2], 0xF000
    mov al, 0x11                ; 8259 ICW1: edge, cascade, ICW4 follows
    out 0x20, al
    out 0xA0, al
    mov al, 0x08                ; ICW2: master vectors 8-15
    out 0x21, al
    mov al, 0x70                ; slave vectors 0x70-0x77
    out 0xA1, al
    mov al, 0x04                ; ICW3: slave on IRQ 2
    out 0x21, al
    mov al, 0x02
    out 0xA1, al
    mov al, 0x01                ; ICW4: 8086 mode
    out 0x21, al
    out 0xA1, al
    mov al, 0xFE                ; OCW1: only IRQ 0
    out 0x21, al
    mov al, 0xFF
    out 0xA1, al
    mov al, 0x34                ; PIT channel 0, lo/hi byte, mode 2 (rate generator)
    out 0x43, al
    mov ax, PIT_DIVISOR
    out 0x40, al
    mov al, ah
    out 0x40, al
.wait:
    sti
    hlt
    cli
    mov dx, 0x600
    in ax, dx
    test ax, 0x0100
    jz .wait
    mov ax, 0x2000
    call acpi_sleep
    jmp idle

gdt:
    dq 0
    dq 0x00CF92000000FFFF       ; flat 4 GiB data segment
gdt_pointer:
    dw gdt_pointer - gdt - 1
    dd 0xF0000 + gdt

tick:
    push ax
    mov al, 0x20
    out 0x20, al
    pop ax
    iret

    times 0xFFF0 - ($ - $$) db 0
    jmp 0xF000:button_entry
    times 0x10000 - ($ - $$) db 0
