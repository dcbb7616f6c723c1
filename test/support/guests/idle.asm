; Does nothing: halts at once (for host-only scenarios on -machine pc).
%include "firmware.inc"

main:

    jmp idle

%include "reset-vector.inc"
