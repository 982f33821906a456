"""Voice guidance: what each screen says aloud (``prompts``), and the offline speech
engines that turn it into samples (``tts``, with a cache in ``cache``).
Playback belongs to ``myna_drivers.voice``; the loop side is ``mynad.shell.voiceio``.
See docs/voice.md."""
