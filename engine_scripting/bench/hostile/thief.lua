-- thief.lua (hostile): writes to another entity (1) than its own, although its scope is "self".
-- Even inside pcall, the violation is recorded and the script is disabled.
function on_update(self, dt)
  local ok, err = pcall(world.set, 1, "Position", {x = 0, y = 0})
  print("thief tried to move entity 1:", ok, err)
end
