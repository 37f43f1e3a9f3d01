# bench/serve.sh: aggregate decode tokens/s by concurrent streams (datafile, outfile set with -e)
set terminal pngcairo size 900,540 font "sans,11"
set output outfile
set title "Aggregate decode throughput, full-size E2B-shaped Q4_0, 2 threads" noenhanced
set xrange [0.8:20]
set xlabel "concurrent streams"
set ylabel "generated tokens/s (all streams)"
set logscale x 2
set xtics (1, 2, 4, 8, 16)
set key left top
set grid
plot datafile using 1:2 with linespoints lw 2 pt 7 title "g4 serve --parallel 16", \
     '' using 1:3 with linespoints lw 2 pt 5 title "llama-server -np 8"
