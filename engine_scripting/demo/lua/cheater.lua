-- cheater.lua: a mod with the grants an honest ship AI needs (read every Position, move its own
-- ship, report its own score) that tries to cheat with them. Each attempt is refused with
-- PermissionDenied, and the first one disables the script (caught or not).
local tries = 0

function on_update(self, dt)
  local p = world.get(self.entity, "Position")
  world.set(self.entity, "Position", {x = p.x, y = p.y})   -- honest: move its own ship
  tries = tries + 1
  local victim = self.entity - 1                            -- some other ship
  if tries == 1 then
    pcall(world.emit, "score", {points = 1e6}, victim)      -- a forged score for another entity
  elseif tries == 2 then
    pcall(world.set, victim, "Position", {x = -1e9})        -- moving another ship off the map
  else
    pcall(world.destroy, victim)                            -- a remote kill
  end
end
