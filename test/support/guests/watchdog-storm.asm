; ib700 watchdog storm: re-arms the 0 s timeout without end, so the watchdog expires again and again (a WATCHDOG event storm, throttled by QEMU to one event a second).
%include "firmware.inc"

main:
.storm:
    mov dx, 0x443
    mov al, 0x0F
    out dx, al
    mov cx, 2000            ; a pause without I/O: QEMU's main loop needs the big lock too
.gap:
    pause
    loop .gap
    jmp .storm
    jmp idle

%include "reset-vector.inc"
