"""Text summaries of both architectures for ``xclusters models``."""
from __future__ import annotations

__all__ = ["describe_models"]


def describe_models(superobs_pixels: int | None = 256, mass_pixels: int = 128) -> str:
    """Return the Keras summaries and trainable-parameter counts of both CNNs.

    Parameters
    ----------
    superobs_pixels : int or None
        Side of the eROSITA input image, pixels (``instruments.erosita.image_pixels``).
    mass_pixels : int
        Side of the Chandra input image, pixels (``instruments.chandra_acisi.image_pixels``).

    Returns
    -------
    str
        Multi-line text; paper values for comparison: 48,687 (paper 000) and 58,437
        (paper 004) trainable parameters.
    """
    from xclusters.models.mass import build_mass_model
    from xclusters.models.params import count_trainable
    from xclusters.models.superobs import build_superobs_model

    lines: list[str] = []
    for title, model, paper in (
            ("Super-observation CNN (paper 000, Table 2)",
             build_superobs_model(3, superobs_pixels), 48687),
            ("Mass CNN (paper 004, section 2.2)", build_mass_model(mass_pixels), 58437)):
        lines.append(f"== {title}")
        model.summary(print_fn=lambda s, **_: lines.append(s))
        n = count_trainable(model)
        lines.append(f"trainable parameters: {n:,} (paper: {paper:,})"
                     + ("" if n == paper else "  <-- differs from the paper"))
        lines.append("")
    return "\n".join(lines)
