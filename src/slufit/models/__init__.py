"""Model adapters: every LALM behind one small interface (`slufit.models.base.SLUModel`)."""
