-- spammer.lua (hostile): emits an event it was not granted, with a payload meant to break its
-- receivers (a string where they expect a number). Even inside pcall, the violation is recorded
-- and the script is disabled.
function on_update(self) pcall(world.emit, "ping", {n = "bad"}) end
