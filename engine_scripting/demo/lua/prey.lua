-- prey.lua: wanders, tells everyone where it is, and leaves the world when caught.
local random, sqrt = math.random, math.sqrt

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
  self.ticks = (self.ticks or 0) + 1
  if self.ticks % 5 == 0 then
    world.emit("prey_here", {entity = self.entity, x = x, y = y})
  end
end

function on_event(self, name, payload)
  -- two predators may catch it in one tick
  if name == "caught" and payload.prey == self.entity and not self.caught then
    self.caught = true
    world.emit("prey_eaten", {by = payload.by})
    world.destroy(self.entity)
  end
end
