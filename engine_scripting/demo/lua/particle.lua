-- particle.lua: falls under gravity, bounces on the floor, cools down, and ends itself.
local GRAVITY = -60

function on_update(self, dt)
  local p = world.get(self.entity, "Position")
  local v = world.get(self.entity, "Velocity")
  local life = world.get(self.entity, "Life").remaining - dt
  if life <= 0 then
    world.destroy(self.entity)
    return
  end
  local vx, vy = v.x, v.y + GRAVITY * dt
  local x, y = p.x + vx * dt, p.y + vy * dt
  if y < 0 then y, vy = 0, -vy * 0.55 end
  if x < 0 or x > 100 then vx = -vx end
  world.set(self.entity, "Position", {x = x, y = y})
  world.set(self.entity, "Velocity", {x = vx, y = vy})
  world.set(self.entity, "Life", {remaining = life})
  local heat = life / 2.4
  world.set(self.entity, "Appearance", {g = math.floor(80 + 175 * heat), b = math.floor(60 * heat)})
end
