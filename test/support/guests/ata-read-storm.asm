; ATA read-error storm: reads sector 0 of the secondary master (PIIX IDE, legacy ports
; 0x170-0x177; `-device ide-hd` without `bus=` lands on ide.1 on QEMU 7.2 and 10.0) again and again. The disk's backend fails every read (a blkdebug `inject-error` on read_aio),
; so each read ends in BLOCK_IO_ERROR with the drive's rerror action (hw/ide/core.c
; ide_handle_rw_error). QEMU 9.2+ throttles that event per qom-path (qemu-behaviour §2.1); 7.2 does not.
; With no firmware the IDE function's PCI command register is 0, so its I/O decoding is enabled
; first, as a BIOS would.
%include "firmware.inc"

main:
    mov eax, 0x80000904         ; bus 0, device 1, function 1 (PIIX IDE), register 0x04 (command)
    mov dx, 0xCF8
    out dx, eax
    mov dx, 0xCFC
    in ax, dx
    or ax, 1                    ; I/O space enable
    out dx, ax
.storm:
    mov dx, 0x176
    mov al, 0xE0                ; LBA mode, master, LBA bits 24-27 = 0
    out dx, al
    mov dx, 0x172
    mov al, 1                   ; one sector
    out dx, al
    xor al, al
    mov dx, 0x173
    out dx, al
    inc dx
    out dx, al
    inc dx
    out dx, al
    mov dx, 0x177
    mov al, 0x20                ; READ SECTORS
    out dx, al
.busy:
    mov cx, 2000                ; a pause without I/O: QEMU's main loop needs the big lock too
.gap:
    pause
    loop .gap
    in al, dx                   ; status: wait until BSY (bit 7) clears
    test al, 0x80
    jnz .busy
    jmp .storm

%include "reset-vector.inc"
