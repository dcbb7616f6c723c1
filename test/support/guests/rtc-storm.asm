; RTC_CHANGE storm: reads the RTC seconds register and writes the same value back, without end. Each write sets the RTC time and QEMU emits RTC_CHANGE (hw/rtc/mc146818rtc.c), throttled to one a second.
%include "firmware.inc"

main:
.storm:
    xor al, al
    out 0x70, al
    in al, 0x71
    mov ah, al
    xor al, al
    out 0x70, al
    mov al, ah
    out 0x71, al
    mov cx, 2000            ; a pause without I/O: QEMU's main loop needs the big lock too
.gap:
    pause
    loop .gap
    jmp .storm
    jmp idle

%include "reset-vector.inc"
