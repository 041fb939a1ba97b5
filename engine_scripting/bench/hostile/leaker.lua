-- leaker.lua (hostile): keeps 4 KiB more every tick, for good. Harmless for a while; the memory
-- limit stops it once its state is full (about 256 ticks per MiB of limit), and it is then
-- disabled.
leak = {}

function on_update(self) leak[#leak + 1] = ("y"):rep(4096) end
