"""The capture jobs: `screwcam record` (training videos), `slice` (videos -> dataset)
and `synth` (a rendered dataset). They build on the shared core in `screwcam`."""
