-- npc.lua: a villager who talks. Her name and lines come from the entity's own params
-- (Script("npc", params={...})); a task says them one by one with a pause between, and another
-- thanks the hero a moment after the quest is done.
local function say(self, line)
  print(self.params.name .. ": " .. line)
end

function on_start(self)
  task.spawn(function()
    for _, line in ipairs(self.params.lines) do
      say(self, line)
      task.wait(self.params.pause)
    end
  end)
end

function on_event(self, name, payload)
  if name == "quest_done" then
    task.delay(0.5, say, self, "You found all " .. payload.gems .. " gems! Here are "
      .. payload.reward .. " gold.")
  end
end
