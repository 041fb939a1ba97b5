-- An infinite loop: the watchdog stops it at the time limit.
-- engine-scripting run examples/runaway.lua --time-ms 50
local n = 0
while true do n = n + 1 end
