"""The source papers' training recipes as data: one named ``Recipe`` per system, read by the same training loop.

A recipe fixes what its paper fixes (architecture, loss, optimiser, learning rates, schedule, augmentation) and
records what we had to change to train on two CPU cores (crop size, batch, budget), so reproducing a paper is
``python -m colorizer train --recipe NAME --data DIR --out RUN`` and comparing two recipes is a diff of two entries.
``reported`` holds the paper's own numbers, for the model cards.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Recipe:
    name: str  # weights stem, e.g. "deepcolor-unet"
    paper: str  # file in ../shared/papers and a short citation
    system: str  # one line, for the app's picker and `python -m colorizer models`
    model: str  # registry name
    loss: str  # mse | huber | blur | gan
    model_config: dict = field(default_factory=dict)
    lr: float = 1e-3  # Adam learning rate (new layers; every layer of a from-scratch model)
    encoder_lr: Optional[float] = None  # ImageNet-loaded encoders only; None: same as lr
    betas: tuple = (0.9, 0.999)
    weight_decay: float = 0.0
    schedule: str = "none"  # none | plateau (ReduceLROnPlateau on the validation loss)
    plateau_patience: int = 3
    plateau_factor: float = 0.5  # what ReduceLROnPlateau multiplies the rates by
    checkpoint: str = "last"  # which checkpoint ships: "last" or "best" (lowest validation loss)
    hflip: bool = False
    vflip: bool = False
    scale_jitter: bool = False  # random crop sides size..1.75*size resized to size; else whole photo at size
    freeze_encoder: bool = False  # freeze an ImageNet-loaded encoder (never a random one)
    gan_l1_weight: float = 100.0
    gan_pretrain_epochs: int = 0
    gan_real_label: float = 1.0  # one-sided label smoothing when < 1
    d_lr: float = 2e-4
    discriminator: str = "patchgan"
    size: int = 128  # training crop side (the papers use 224 or 256; 4x the cost on CPU)
    batch: int = 32
    steps_per_epoch: int = 40  # an "epoch" here is a checkpoint interval: 1,280 crops
    budget_images: int = 60_000  # crops seen; chosen where the validation curve flattens
    deviations: tuple = ()  # where and why this recipe differs from the paper
    reported: dict = field(default_factory=dict)  # the paper's numbers, as it reports them


_CPU = "crops of 128 px, batch 32 (the paper: {paper_size} px{paper_batch}): the only way to give it tens of thousands of " \
       "crops on two CPU cores"
_NO_IMAGENET = "no ImageNet weights on this machine: the encoder starts from random init and trains at the full rate"


_DEEPCOLOR_DATA = "trained on this project's 2,940 photos, not COCO/Places/ADE20K (12,000)"


def _cpu(paper_size: int, paper_batch: str = "") -> str:
    return _CPU.format(paper_size=paper_size, paper_batch=f", batch {paper_batch}" if paper_batch else "")


# Queue order: fastest to finish first (run directories did not always survive between sessions here, so each
# recipe should finish within one working session); budgets in crops seen at 128 px.
RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe(
        name="deepcolor-unet", paper="002 DeepColor (Tsvetkov, Walhout, Wang)",
        system="DeepColor's from-scratch U-Net (MSE): the paper's best, 53% public acceptance",
        model="unet", loss="mse", lr=1e-4, budget_images=60_000,
        deviations=(_cpu(256, "383"), _DEEPCOLOR_DATA),
        reported={"MSE": 0.006, "PSNR": 23.799, "acceptance": 0.53, "epochs": 30},
    ),
    Recipe(
        name="deepcolor-mobilenet", paper="002 DeepColor",
        system="DeepColor's MobileNet v1 encoder, 5 upsampling blocks, no skip connections (MSE)",
        model="mobilenet_unet", loss="mse", lr=1e-4, budget_images=50_000,
        model_config={"decoder": "deepcolor", "skips": False},
        deviations=(_cpu(256, "383"), "MobileNet v1 built here (torchvision has only v2); no ImageNet v1 weights "
                    "exist in torchvision's format, so it always starts from random init", _DEEPCOLOR_DATA,
                    "each of the five decoder blocks ends in BatchNorm after its ReLU, as the paper describes for "
                    "its DenseNet decoder; for MobileNet it names upsampling, convolution and ReLU only"),
        reported={"MSE": 0.053, "PSNR": 13.102, "epochs": 30},
    ),
    Recipe(
        name="organic-cgan", paper="004 OrGANic (Hamrick, Siu), after Nazeri et al.",
        system="OrGANic's main system: Nazeri et al.'s U-Net generator with a PatchGAN discriminator (BCE + 100 L1)",
        model="nazeri_unet", loss="gan", lr=2e-4, betas=(0.5, 0.999), hflip=True, gan_l1_weight=100.0,
        gan_real_label=0.9, budget_images=50_000, model_config={"base_channels": 32},
        deviations=(_cpu(256), "generator at half width (32 -> 256 channels instead of 64 -> 512): the full "
                    "network (46.9M parameters, 94 MB in fp16) does not fit the 50 MB file limit and trains 4x slower here",
                    "one-sided label smoothing (discriminator target 0.9 for real pairs): in neither the paper nor "
                    "Nazeri et al.'s code; added here to keep the discriminator from winning early on few photos"),
        reported={"MSE": 0.0123, "SSIM": 0.8503, "epochs": 20},
    ),
    Recipe(
        name="manipal-fusion", paper="003 Manipal (Pradhan, Gupta, Gaurav), after Deep Koalarization",
        system="Manipal's encoder + global-feature fusion + transpose-conv decoder (MSE, tanh)",
        model="fusion_vgg16", loss="mse", lr=1e-3, hflip=True, scale_jitter=True, budget_images=60_000,
        model_config={"global_source": "efficientnet_lite0", "class_vector": "logits"},
        deviations=(_cpu(256), "the 1000-d class vector comes from another ImageNet classifier, EfficientNet-Lite0 "
                    "(installed by pip), not VGG-16, whose weights cannot be had "
                    "here: its 1000 outputs just before the softmax, as the paper takes VGG-16's, for the gray photo "
                    "at 224 px, computed once per whole photo",
                    "augmentation: horizontal flips and scale jitter only; the paper also names vertical flips, "
                    "rotations, brightness and shifts"),
        reported={"epochs": 2000},
    ),
    Recipe(
        name="brown-vgg19", paper="000 Brown (Adrian, Farrell, Gurth, Vandevoorde)",
        system="Brown's VGG-19 U-Net with the Gaussian-blur perceptual loss (Lab)",
        model="vgg19_unet", loss="blur", lr=1e-3, hflip=True, vflip=True, freeze_encoder=True,
        # VGG-19 at full resolution trains at ~2.4 crops/s here, the slowest recipe; its validation loss was flat
        # from 3,840 crops (0.1082-0.1094 over checkpoints 3-8), so the budget stops at 8 checkpoints
        budget_images=10_240,
        deviations=(_cpu(224), _NO_IMAGENET + "; the paper freezes it (set --freeze-encoder with an ImageNet "
                    "file to do the same)", "Adam at Keras' default 1e-3: the paper names no learning rate"),
        reported={"val_MSE_ab": 135.2, "train_MSE_ab": 147.9, "epochs": "50 x 160 photos"},
    ),
    Recipe(
        name="ucsd-vgg16", paper="001 UCSD (Pathak), after Hwang & Zhou and Dahl",
        system="UCSD's VGG-16 regression net in CIE LUV with element-wise-sum skips (Huber loss)",
        model="vgg16_regression", loss="huber", lr=1e-3, encoder_lr=3e-6, schedule="plateau", plateau_patience=1,
        # the paper decays on plateaus with Keras/PyTorch defaults (factor 0.1) and keeps the best-validation model
        plateau_factor=0.1, checkpoint="best", budget_images=24_000,
        deviations=(_cpu(224), _NO_IMAGENET + " (3e-6 applies only to a loaded ImageNet encoder)"),
        reported={"test_huber": 0.001849, "epochs": 25},
    ),
    Recipe(
        name="organic-resnet18", paper="004 OrGANic, after Shariatnia's ResNet-18 U-Net",
        system="OrGANic's ResNet-18 U-Net generator with a PatchGAN (BCE + 1 L1, as the paper had to use)",
        model="resnet18_unet", loss="gan", lr=2e-4, betas=(0.5, 0.999), hflip=True, gan_l1_weight=1.0,
        gan_pretrain_epochs=12, budget_images=50_000,
        deviations=(_cpu(256), _NO_IMAGENET, "the generator is first trained with L1 alone for 12 checkpoint "
                    "intervals (15,360 crops), as Shariatnia's recipe that the paper follows does"),
        reported={"MSE": 0.0089, "SSIM": 0.8414, "epochs": 20},
    ),
    Recipe(
        name="deepcolor-densenet", paper="002 DeepColor",
        system="DeepColor's DenseNet-121 encoder with a 5-block decoder and no skip connections (MSE)",
        model="densenet121_unet", loss="mse", lr=1e-4,
        budget_images=30_000,  # ~5 crops/s here: 30k fits one session
        model_config={"decoder": "deepcolor", "skips": False},
        deviations=(_cpu(256, "383"), _NO_IMAGENET, _DEEPCOLOR_DATA),
        reported={"MSE": 0.013, "PSNR": 19.468, "acceptance": 0.46, "epochs": 30},
    ),
]}


# OrGANic's Table 1 (issue 28): its own generator and discriminator ("Custom Gen + Custom Disc", the baseline the
# paper says stayed black and white while scoring well on MSE and SSIM), and Nazeri's cGAN with the generator first
# trained on L1 alone ("Pretrained UNET Gen + Patch Disc": 20 epochs of L1, then 15 of the GAN).
RECIPES["organic-custom"] = Recipe(
    name="organic-custom", paper="004 OrGANic (Hamrick, Siu)",
    system="OrGANic's own residual generator (no down/upsampling) and classifier discriminator (BCE + 100 L1)",
    model="organic_residual", loss="gan", discriminator="organic_discriminator", lr=2e-4, betas=(0.5, 0.999),
    hflip=True, gan_l1_weight=100.0, budget_images=25_600,
    deviations=(_cpu(256), "the paper names the layer types but no widths or depths: 6 residual blocks of 32 "
                "channels, a discriminator of 4 conv-BN-LeakyReLU-max-pool blocks (32 to 256 channels), dropout 0.3 "
                "after every second block, 4x4 average pooling before its linear layer (so any crop size works)"),
    reported={"MSE": 0.0071, "SSIM": 0.91, "epochs": 20},
)
RECIPES["organic-cgan-pretrained"] = dataclasses.replace(
    RECIPES["organic-cgan"], name="organic-cgan-pretrained",
    system="OrGANic's cGAN (Nazeri's U-Net + PatchGAN) with the generator first trained on L1 alone",
    gan_real_label=1.0, gan_pretrain_epochs=20, budget_images=44_800,
    deviations=(_cpu(256), RECIPES["organic-cgan"].deviations[1],
                "an epoch here is a checkpoint interval of 1,280 crops: 20 of L1, then 15 of the GAN, as the paper's "
                "20 + 15 epochs"),
    reported={"MSE": 0.0085, "SSIM": 0.8899, "epochs": "20 L1 + 15"},
)

# DeepColor as published (issue 28): the networks predict the RGB image (sigmoid, MSE on RGB), lightness included,
# and inference shows it as predicted. The ab recipes above are the project's variant (the photo's own lightness).
_AB = ("predicts Lab ab joined to the photo's own sharp lightness, where the paper predicts RGB "
       "(deepcolor-{0}-rgb): with the lightness given, a decoder without skips loses little detail")
# the ab models' one-line descriptions say they are the variant, so the paper's results are not read as theirs
_AB_SYSTEM = "{0}, the project's variant: Lab ab over the photo's own lightness (MSE; the paper's is {1}-rgb)"
for _name in ("unet", "mobilenet", "densenet"):
    _ab = RECIPES[f"deepcolor-{_name}"]
    RECIPES[f"deepcolor-{_name}-rgb"] = dataclasses.replace(
        _ab, name=f"deepcolor-{_name}-rgb", system=_ab.system.replace("(MSE", "(RGB output, MSE on RGB"),
        model_config={**_ab.model_config, "head": "rgb"})
    RECIPES[f"deepcolor-{_name}"] = dataclasses.replace(
        _ab, system=_AB_SYSTEM.format(_ab.system.split(" (MSE")[0], _ab.name),
        deviations=(*_ab.deviations, _AB.format(_name)))


def list_recipes() -> list[str]:
    return list(RECIPES)


# A paper's reported error (its key in ``Recipe.reported``) -> the evaluation column measuring it as that paper
# defines it, and the row label.
PAPER_ERRORS = {
    "MSE": ("mse", "MSE (RGB in [0, 1])"),
    "val_MSE_ab": ("mse_ab", "MSE over a and b (Lab units; Brown's Keras `mse`)"),
    "test_huber": ("huber_uv", "Huber loss over u and v in [0, 1] (UCSD's test loss)"),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise KeyError(f"unknown recipe {name!r}; valid names: {', '.join(RECIPES)}") from None


def train_config(name: str, data: str, out: str, **overrides):
    """The ``TrainConfig`` of recipe ``name``; ``overrides`` (CLI flags the user set) win over the recipe."""
    from colorizer.train import TrainConfig

    recipe = get_recipe(name)
    values = dict(
        recipe=recipe.name, model=recipe.model, model_config=dict(recipe.model_config), loss=recipe.loss,
        lr=recipe.lr, encoder_lr=recipe.lr if recipe.encoder_lr is None else recipe.encoder_lr,
        betas=tuple(recipe.betas), weight_decay=recipe.weight_decay, schedule=recipe.schedule,
        plateau_patience=recipe.plateau_patience, plateau_factor=recipe.plateau_factor, hflip=recipe.hflip,
        vflip=recipe.vflip,
        size=recipe.size, max_crop=int(recipe.size * 1.75) if recipe.scale_jitter else recipe.size,
        cache_side=256 if recipe.scale_jitter else recipe.size,
        batch=recipe.batch, steps_per_epoch=recipe.steps_per_epoch, budget_images=recipe.budget_images,
        freeze_encoder=recipe.freeze_encoder, gan_l1_weight=recipe.gan_l1_weight,
        gan_pretrain_epochs=recipe.gan_pretrain_epochs, gan_real_label=recipe.gan_real_label, d_lr=recipe.d_lr,
        discriminator=recipe.discriminator,
        data=data, out=out,
    )
    unknown = set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise TypeError(f"unknown training option(s) {sorted(unknown)}")
    overrides = dict(overrides)
    # --model-config merges into the recipe's (an ablation changes one switch, the rest stays as published)
    values["model_config"].update(overrides.pop("model_config", None) or {})
    values.update(overrides)
    return TrainConfig(**values)


def describe(recipe: Recipe) -> str:
    lines = [f"{recipe.name}: {recipe.system}", f"  paper: {recipe.paper}",
             f"  model {recipe.model} {recipe.model_config or ''}, loss {recipe.loss}, Adam lr {recipe.lr:g}"
             f"{'' if recipe.encoder_lr is None else f' (ImageNet encoder {recipe.encoder_lr:g})'}, "
             f"schedule {recipe.schedule}, budget {recipe.budget_images:,} crops of {recipe.size} px"]
    lines += [f"  differs: {d}" for d in recipe.deviations]
    return "\n".join(lines)
