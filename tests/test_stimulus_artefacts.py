"""The default study's real and colorized stimuli differ in colour only: no cheap artefact feature (JPEG chroma
blocks, chroma sharpness) tells them apart. The same classifier finds the blocks when real photos keep them."""

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import select

from colorizer import Colorizer
from study.artefacts import FEATURES, artefact_auc, artefact_features
from study.db import make_engine, make_session_factory
from study.schema import SourcePhoto, Stimulus
from study.stimuli import StudyDesign, build_study, default_photos


def _stimulus_table(tmp_path, real_chroma: str) -> pd.DataFrame:
    factory = make_session_factory(make_engine(f"sqlite:///{tmp_path / f'{real_chroma}.sqlite'}"))
    with factory.begin() as session:
        build_study(session, StudyDesign(name="check", real_chroma=real_chroma), default_photos(),
                    {"balanced": Colorizer("balanced")})
    rows = []
    with factory() as session:
        for stimulus, label in session.execute(select(Stimulus, SourcePhoto.label).join(SourcePhoto)):
            if stimulus.condition == "sentinel":
                continue
            rgb = np.asarray(Image.open(io.BytesIO(stimulus.content)).convert("RGB"))
            rows.append({"photo": label, "is_real": stimulus.is_real, **artefact_features(rgb)})
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_default_stimuli_carry_no_artefact_that_tells_real_from_fake(tmp_path):
    shipped = _stimulus_table(tmp_path, "band_limited")
    assert shipped["is_real"].sum() >= 45 and (~shipped["is_real"]).sum() >= 40
    auc = artefact_auc(shipped)
    print(f"artefact AUC, band-limited real chroma: {auc:.3f}")
    assert auc <= 0.6
    # the colour statistics are what they are: reported, not hidden (colourfulness differs by model, not by artefact)
    original = _stimulus_table(tmp_path, "original")
    auc_original = artefact_auc(original)
    print(f"artefact AUC, real photos as they are: {auc_original:.3f}")
    assert auc_original >= 0.8  # the classifier does find JPEG chroma blocks when they are there
    means = original.groupby("is_real")[list(FEATURES)].mean()
    assert means.loc[True, "block_step_16"] > means.loc[False, "block_step_16"]
