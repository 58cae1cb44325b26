-- LÖVE's configuration for the example game: a small window, and none of the modules it does not
-- use (no audio device is needed, so it runs on a headless machine under Xvfb too).
function love.conf(t)
  t.identity = "mgconn-example"
  t.window.title = "mgconn in LÖVE"
  t.window.width, t.window.height = 640, 360
  t.window.vsync = 0 -- love.run paces the frames itself, at 60 Hz
  t.modules.audio, t.modules.sound, t.modules.joystick, t.modules.physics, t.modules.video = false, false, false, false, false
end
