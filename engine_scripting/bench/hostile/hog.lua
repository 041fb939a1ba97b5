-- hog.lua (hostile): burns CPU every tick, close to a tight time budget (about 20 ms here).
-- Whether the time limit stops it depends on the machine and the budget; either way the other
-- scripts run on.
function on_update(self)
  local s = 0
  for i = 1, 3e6 do s = s + i end
end
