"""An import-heavy training script (scikit-learn, pandas, scipy, numpy) on a bundled data set."""

import sys

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

alpha = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
l1_ratio = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
data = load_diabetes(as_frame=True).frame
train, test = train_test_split(pd.DataFrame(data), random_state=40)
model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=42)
model.fit(train.drop(columns="target"), train["target"])
predicted = model.predict(test.drop(columns="target"))
print(f"rmse={np.sqrt(mean_squared_error(test['target'], predicted)):.4f}")
