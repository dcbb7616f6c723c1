; ib700 watchdog (-device ib700): one write of 0x0F to port 0x443 arms it with a 0 s timeout, the shortest (hw/watchdog/wdt_ib700.c time_map), so it expires at once, once.
%include "firmware.inc"

main:
    mov dx, 0x443
    mov al, 0x0F
    out dx, al
    jmp idle

%include "reset-vector.inc"
