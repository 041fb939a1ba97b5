-- quest.lua: the quest's state machine, on the quest's own entity. The goal and the reward
-- come from the script's config (manager.load(..., config={...})), read-only and kept across
-- hot reloads.
function on_start(self)
  self.state, self.found = "offered", 0
  print("quest: find " .. config.goal .. " gems (reward " .. config.reward .. " gold)")
end

function on_event(self, name)
  if name ~= "gem_collected" or self.state == "done" then return end
  self.found = self.found + 1
  self.state = self.found >= config.goal and "done" or "collecting"
  print("quest: " .. self.found .. " of " .. config.goal .. " gems")
  if self.state == "done" then
    world.emit("quest_done", {gems = self.found, reward = config.reward})
  end
end
