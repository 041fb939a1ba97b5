-- nest.lua: keeps the prey population up: a new prey for every one eaten.
local random = math.random

function on_event(self, name)
  if name == "prey_gone" then
    world.spawn("prey", {Position = {x = 5 + random() * 90, y = 5 + random() * 90}})
  end
end
