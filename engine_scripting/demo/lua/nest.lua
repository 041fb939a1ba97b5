-- nest.lua: keeps the prey population up: a new prey for every one eaten.
local random = math.random

function on_event(self, name, payload)
  if name == "prey_eaten" then
    world.spawn({
      Position = {x = 5 + random() * 90, y = 5 + random() * 90},
      Appearance = {r = 120, g = 220, b = 120, size = 1.5},
      script = "prey",
    })
  end
end
