-- bomb.lua (hostile): tries to eat all memory. Each string is made unique by a concatenation,
-- which leaves the 64 KiB piece behind as garbage: the limit must hold while the collector has
-- something to free. The memory limit stops it every tick until it is disabled (or the time
-- limit does, first: filling 8 MiB takes 50-200 ms, longer than a tight budget).
function on_update(self, dt)
  local hoard = {}
  for i = 1, math.huge do hoard[i] = string.rep("x", 65536) .. i end
end
