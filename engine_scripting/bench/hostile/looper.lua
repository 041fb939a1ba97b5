-- looper.lua (hostile): never returns. The time limit stops it every tick until it is disabled.
function on_update(self, dt)
  print("looping forever...")
  while true do end
end
