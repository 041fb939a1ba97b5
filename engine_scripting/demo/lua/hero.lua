-- hero.lua: walks to the nearest gem (world.nearest over the host's spatial index), picks it up
-- (a targeted event: the gem removes itself), and walks home when none is left. The walk is one
-- task: task.wait(0) waits for the next tick and returns the time that passed.
local sqrt = math.sqrt
local SIGHT, REACH = 200, 1.0

local function walk_to(self, x, y)
  local speed = self.params.speed
  while true do
    local p = world.get(self.entity, "Position")
    local dx, dy = x - p.x, y - p.y
    local d = sqrt(dx * dx + dy * dy)
    if d < REACH then return end
    local step = math.min(d, speed * task.wait(0))
    p.x, p.y = p.x + dx / d * step, p.y + dy / d * step
    world.set(self.entity, "Position", p)
  end
end

function on_start(self)
  local home = world.get(self.entity, "Position")
  self.home = {x = home.x, y = home.y}
  self.picked = 0
  task.delay(self.params.start_after, function()
    while true do
      local p = world.get(self.entity, "Position")
      local gem = world.nearest(p.x, p.y, SIGHT, "Gem")
      if gem == nil then break end
      local g = world.get(gem, "Position")
      walk_to(self, g.x, g.y)
      world.emit("picked", nil, gem)
      self.picked = self.picked + 1
      task.wait(0.25)
    end
    walk_to(self, self.home.x, self.home.y)
    print("hero is home with " .. self.picked .. " gems")
  end)
end
