"""The tiering service: customer tiers: GoTone scoring, plan tiers, segmentation."""
