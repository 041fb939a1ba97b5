-- flooder.lua (hostile): prints as fast as it can. Its lines are capped per tick, so the
-- console keeps room for everyone else; printing is allowed, so it stays enabled.
function on_update(self, dt)
  for i = 1, 10000 do print("flood", i) end
end
