-- orbiter.lua: a well-behaved script. Circles the centre at its own radius and speed.
local cos, sin = math.cos, math.sin

function on_start(self)
  local p = world.get(self.entity, "Position")
  local dx, dy = p.x - 50, p.y - 50
  self.radius = math.sqrt(dx * dx + dy * dy)
  self.angle = math.atan(dy, dx)
  self.speed = 0.4 + (self.entity % 7) * 0.1
end

function on_update(self, dt)
  self.angle = self.angle + self.speed * dt
  world.set(self.entity, "Position", {
    x = 50 + cos(self.angle) * self.radius,
    y = 50 + sin(self.angle) * self.radius,
  })
end
