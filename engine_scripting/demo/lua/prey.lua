-- prey.lua: wanders, and leaves the world when a predator catches it (telling that predator).
local random = math.random

function on_start(self)
  self.heading = random() * 6.283
end

function on_update(self, dt)
  local p = world.get(self.entity, "Position")
  self.heading = self.heading + (random() - 0.5) * 0.6
  local speed = 14
  local x = p.x + math.cos(self.heading) * speed * dt
  local y = p.y + math.sin(self.heading) * speed * dt
  if x < 2 or x > 98 then self.heading = math.pi - self.heading end
  if y < 2 or y > 98 then self.heading = -self.heading end
  x, y = math.max(1, math.min(99, x)), math.max(1, math.min(99, y))
  world.set(self.entity, "Position", {x = x, y = y})
end

function on_event(self, name, payload, sender)
  -- two predators may catch it in one tick: the first one gets it
  if name == "caught" and not self.caught then
    self.caught = true
    world.emit("prey_eaten", nil, sender)
    world.emit("prey_gone")
    world.destroy(self.entity)
  end
end
