-- spawner.lua: a fountain. Spawns a few particles each tick from its own position.
local random, cos, sin, pi = math.random, math.cos, math.sin, math.pi
local PER_TICK = 4

function on_start(self)
  self.spawned = 0
end

function on_update(self, dt)
  local origin = world.get(self.entity, "Position")
  for _ = 1, PER_TICK do
    local angle = pi / 2 + (random() - 0.5) * 0.8
    local speed = 45 + random() * 20
    world.spawn({
      Position = {x = origin.x, y = origin.y},
      Velocity = {x = cos(angle) * speed, y = sin(angle) * speed},
      Appearance = {r = 255, g = 200 + random(0, 55), b = 80, size = 1.2},
      Life = {remaining = 1.6 + random() * 0.8},
      script = "particle",
    })
    self.spawned = self.spawned + 1
  end
  if self.spawned % 240 == 0 then print("spawned " .. self.spawned .. " particles so far") end
end
