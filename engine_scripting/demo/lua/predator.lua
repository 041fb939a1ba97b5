-- predator.lua: hunts the nearest prey it has heard of; knows only what events tell it.
local sqrt = math.sqrt

function on_start(self)
  self.known = {}      -- prey entity -> {x, y}
  self.eaten = 0
end

function on_event(self, name, payload)
  if name == "prey_here" then
    self.known[payload.entity] = {x = payload.x, y = payload.y}
  elseif name == "prey_eaten" and payload.by == self.entity then
    self.eaten = self.eaten + 1
    print("predator " .. self.entity .. " has eaten " .. self.eaten)
    world.set(self.entity, "Appearance", {size = math.min(4, 2 + self.eaten * 0.2)})
  end
end

function on_update(self, dt)
  local p = world.get(self.entity, "Position")
  local best, best_d, bx, by = nil, math.huge, 0, 0
  for prey, seen in pairs(self.known) do
    local dx, dy = seen.x - p.x, seen.y - p.y
    local d = sqrt(dx * dx + dy * dy)
    if d < best_d then best, best_d, bx, by = prey, d, seen.x, seen.y end
  end
  if best == nil then return end
  if best_d < 2.5 then
    self.known[best] = nil
    -- a self-scoped script may not address other entities: it tells every prey which one it
    -- caught (the prey may be gone already: another predator got it)
    world.emit("caught", {by = self.entity, prey = best})
    return
  end
  local speed = 18
  world.set(self.entity, "Position", {
    x = p.x + (bx - p.x) / best_d * speed * dt,
    y = p.y + (by - p.y) / best_d * speed * dt,
  })
end
