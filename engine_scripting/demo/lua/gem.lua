-- gem.lua: when the hero picks it up, it tells everyone and removes itself.
function on_event(self, name)
  if name == "picked" then
    world.emit("gem_collected", {entity = self.entity})
    world.destroy(self.entity)
  end
end
