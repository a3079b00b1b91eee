"""Products computed from predictions ``[n_trs, 20484]`` (fsaverage5, left hemisphere first).

``atlas`` (HCP-MMP1 parcellation), ``rois`` (ROI tables), ``volumes`` (GIFTI and
NIfTI), ``plots`` (brain maps and movies), ``report`` (stimulus-aligned HTML),
``analyses`` (modality contributions, evaluation against real fMRI, resampling).
"""

N_VERTICES_PER_HEMI = 10242
N_VERTICES = 2 * N_VERTICES_PER_HEMI
HEMISPHERES = ("left", "right")
