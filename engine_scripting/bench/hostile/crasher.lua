-- crasher.lua (hostile): fails every tick. Each error is recorded; after 10 failing ticks in a
-- row the script is disabled.
function on_update(self) error("every tick") end
