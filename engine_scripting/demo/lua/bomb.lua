-- bomb.lua (hostile): tries to eat all memory. The memory limit stops it.
function on_update(self, dt)
  local hoard = {}
  for i = 1, math.huge do hoard[i] = string.rep("x", 65536) .. i end
end
