-- predator.lua: chases the nearest prey it can see (world.nearest over the host's spatial index)
-- and tells the prey it caught (a targeted event: its `emit` grant lets "caught" reach others).
local sqrt = math.sqrt
local SIGHT, SPEED, REACH = 40, 18, 2.5

function on_start(self)
  self.eaten = 0
end

function on_event(self, name, payload, sender)
  if name == "prey_eaten" then          -- sent by the prey this predator caught
    self.eaten = self.eaten + 1
    print("predator " .. self.entity .. " has eaten " .. self.eaten .. " (prey " ..
          tostring(sender) .. ")")
    world.set(self.entity, "Appearance", {size = math.min(4, 2 + self.eaten * 0.2)})
  end
end

function on_update(self, dt)
  local p = world.get(self.entity, "Position")
  local prey = world.nearest(p.x, p.y, SIGHT, "Prey")
  if prey == nil then return end
  local q = world.get(prey, "Position")
  local dx, dy = q.x - p.x, q.y - p.y
  local d = sqrt(dx * dx + dy * dy)
  if d < REACH then
    world.emit("caught", nil, prey)
    return
  end
  world.set(self.entity, "Position", {x = p.x + dx / d * SPEED * dt, y = p.y + dy / d * SPEED * dt})
end
