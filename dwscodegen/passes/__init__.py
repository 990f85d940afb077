"""Graph passes over the IR, run after a 1:1 import and before validation's last word: each pass is a
function Graph -> Graph in its own module (constant folding, float16 weight folding, QDQ folding,
activation fusion, ...), and importers list the passes they need in order."""
