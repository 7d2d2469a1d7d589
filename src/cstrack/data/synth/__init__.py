"""Procedurally rendered MOTChallenge sequences with exact ground truth: the project's test data.

Training, tracking and evaluation code needs sequences whose ground truth is right to the pixel,
in any amount and without downloads; this module draws them. It is also where OMC's "fake
background" cases live: person-like things in the background that are not annotated.

Scene
- A fixed camera looks at a ground plane. Rows above the horizon are a building facade, rows below
  are paving. A person whose feet are on image row y is
  `person_height * image_height * (y - horizon_row) / (image_height - horizon_row)` pixels tall,
  times a personal factor of 0.9-1.1: height is linear in the foot row, as on a ground plane,
  so people higher up the image are farther away and smaller.
- Figures: head, hair, torso, arms and legs (the legs and arms swing with the distance walked),
  drawn with antialiased cv2 polygons and ellipses. Each identity has its own clothing colours
  for top and bottom and, for some, a striped or checked top.
- Walkers move at `speed` person heights per second (about 0.8-1.7 m/s by default) along slowly
  drifting headings, drawn far to near so that nearer figures occlude farther ones. They enter at
  the left or right border (Poisson arrivals at the rate that keeps about `people` in view,
  raised while fewer are in view and lowered while more are)
  and leave at the left or right border; they turn back at the far and near edges of the
  walkable band. The crowd is simulated for a while before frame 1, so sequences start full.
- Static clutter (benches, bins, bollards, lamp posts, trees, planters) is part of the background.
- Fake background (`fake_background` > 0): posters on the facade, advertising boards and stone
  statues showing person figures. They are background, so they are never in the ground truth;
  their figure boxes are listed in `fake_background.txt` (`x,y,w,h,kind`, with a header) so
  false positives on them can be counted.
- Vehicles (`vehicles` > 0): small cars seen from the side, a second annotated class (MOT class
  3, car). A car whose wheels touch row y is 0.75 times as tall and 1.9 times as long as a person
  standing there (times a personal factor of 0.9-1.1), under the same perspective rule; cars drive
  at 1-2 person heights per second along nearly horizontal headings, enter and leave at the side
  borders (Poisson arrivals keeping about `vehicles` in view, as for walkers), and are drawn far to
  near among the walkers, so they hide people and people hide them.

Ground truth: `gt/gt.txt` in the MOT16/17 format `frame,id,x,y,w,h,1,class,visibility`
(class 1 pedestrian, 3 car: MOTChallenge's class ids), rows sorted by frame then id, ids 1..
numbered by first appearance (people and cars share one id space, as in MOT16/17).
- The box is the tight box of the figure's pixels (limbs included, hidden parts included),
  clipped to the image, in 0-based pixel-edge coordinates: a box over pixel columns 10..19 has
  x=10, w=10. Figures with no pixel inside the image are not written.
- visibility is the fraction of the figure's pixels that can be seen: not covered by nearer
  figures and inside the image, as in MOT16/17 where truncation at the border also lowers it.
  It is counted on the rendered masks of every frame, 0 for a fully hidden figure.

Camera effects
- blur: motion blur of each figure along its own motion (cv2.filter2D with a line kernel), with a
  streak of `blur` times the figure's displacement per frame; the masks that give boxes and
  visibility are the sharp ones.
- drop_frames: the chance that a capture is lost before a frame. The world then advances one
  extra time step before the frame is drawn: frames are skipped, never repeated, so motion jumps
  by two steps while frame numbers stay consecutive and the ground truth describes the image.
- noise: sensor noise, from three precomputed noise fields used in turn.

Moving cameras (`camera_motion` pan, zoom, shake or walk): the scene above is rendered as a wider
world (`_WORLD` times the frame size, with as many people per frame width) and each frame is the
camera's view of it, `view = scale * (world - origin)` (cv2.warpAffine): pan sweeps across the
world and back, zoom moves in to 1.4x and out, shake jitters around the centre, walk moves in
and out slowly with a 2 Hz bob and a sway; one cycle takes `camera_period` seconds. Boxes are
the world's tight boxes mapped into the view (to 2 decimals) and clipped to it; visibility
counts the figure's pixels inside the view. `camera.txt` holds each frame's world-to-view map
(`frame,a11,a12,a13,a21,a22,a23`), so the exact camera motion between two frames is
`A_t A_(t-1)^-1` (`camera_warps`); `fake_background.txt` is then in world pixels.

Determinism: the same config and seed give byte-identical gt.txt and identical images. The
scene, crowd, fake background, camera and traffic draw from separate random streams, so turning
the fake background on changes the images but not the ground truth, and with `vehicles` 0 the
sequences are exactly those of a version without cars.

Modules: `scene` (`SynthConfig`, the ground plane), `render` (figures, cars, the background, and
boxes and visibilities counted on the rendered masks), `motion` (walkers, cars and the moving
camera), `write` (the frame loop and the files: `generate_sequence`, `generate_dataset`).
"""
